"""The subcommands of ``lapse``, one module per group: each adds its parsers (``add_*``) and
runs them (``run_*``), parsing arguments and printing what the room it calls returns.
``lapse/cli.py`` assembles them in the order ``lapse --help`` lists them."""

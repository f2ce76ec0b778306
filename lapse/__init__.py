"""The entry points: the ``lapse`` command (each subcommand's arguments and printing) and the
demo. The top floor: it may import every room, and no room imports it."""

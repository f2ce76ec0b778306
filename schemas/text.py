"""What text a contract accepts where it is shown rather than matched (labels, names,
notes): the patterns live here so that every contract module uses the same ones."""

from __future__ import annotations

# Labels and free text are shown, not matched: line breaks and tabs are fine in a note, no
# other control (a terminal escape such as ``ESC [`` in a note would reach a log or a CSV).
LABEL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
NOTE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"

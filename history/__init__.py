"""History files read: the reader of the contract in :mod:`schemas.history` and its fast path.

- :mod:`history.reader`: open, decode, tell the format, stream the rows (``read_history``,
  ``HistoryReader``); JSON Lines;
- :mod:`history.reference`: the readable CSV reader, every row through the pydantic models;
- :mod:`history.fast`: the same rows without pydantic for the rows it can prove valid, pinned
  to the reference by ``tests/history/test_fast.py``;
- :mod:`history.order`: whether a file is in time order (``find_disorder``, ``TimeOrder``:
  an export sorted by member or site is sorted in memory offline, refused by the import)
  and ``sort_history``.

Imports only :mod:`schemas`, pydantic and the standard library; importing it does no work
beyond defining things (the fast path's self-check runs when the first CSV is opened).
"""

from history.reader import HistoryReader, read_history

__all__ = ["HistoryReader", "read_history"]

"""Host tools (CPython only): the ``edgefw`` command and its helpers."""

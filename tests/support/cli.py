"""Engine errors as the command line words them: the messages name the flags a user typed."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

import pytest

from conversions.management.cli_terms import cli_message


@contextmanager
def raises_worded(exc_type: type[BaseException], pattern: str) -> Iterator[pytest.ExceptionInfo]:
    """``pytest.raises(exc_type, match=pattern)``, matched against the message as ``export_models`` prints it."""
    with pytest.raises(exc_type) as info:
        yield info
    message = cli_message(info.value)
    assert re.search(pattern, message), message

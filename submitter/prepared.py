"""A job made ready to send: its inputs validated against the catalog (defaults applied, command-line strings
converted) and its local image files checked, before anything is opened or sent.

``prepare`` is the one place a job is checked: ``wavehook submit`` calls it before it opens the ledger,
``AsyncSubmitter.submit`` for library callers, a batch for every job before the first is sent; what comes
after (upload, send) takes the ``Prepared`` job and checks nothing again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from submitter import uploads
from submitter.catalog import get_model, not_catalogued
from submitter.validation import unknown_inputs, validate


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    model: str
    # defaults applied; local image paths are still paths, uploaded when the job is sent
    inputs: dict[str, Any]
    files: uploads.Checked
    warnings: tuple[str, ...] = ()

    @property
    def catalogued(self) -> bool:
        return get_model(self.model) is not None


def prepare(
    model: str,
    inputs: Mapping[str, Any],
    *,
    max_upload_bytes: int,
    from_strings: bool = False,
    allow_extra: bool = False,
) -> Prepared:
    """The job to send; ``ValidationError`` listing every invalid input, else ``UploadError`` naming every bad
    local file. ``allow_extra``: inputs the catalog does not list are sent, each named in a warning."""
    warnings: tuple[str, ...] = ()
    if get_model(model) is None:
        warnings = (f"{not_catalogued(model)}: its inputs are sent without local validation",)
    if allow_extra:
        warnings += tuple(f"{problem}; sent as given" for problem in unknown_inputs(model, inputs))
    checked = validate(model, inputs, from_strings=from_strings, allow_local_paths=True, allow_extra=allow_extra)
    return Prepared(model, checked, uploads.check_files(model, checked, max_upload_bytes), warnings)

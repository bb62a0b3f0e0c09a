"""The image types every reader returns: :class:`Volume` (an MRI series as arrays plus
geometry), :class:`SeriesInfo` (one DICOM series found in a folder) and
:class:`ImageReadError`. No reading here: :mod:`alnm_core.dicom` reads DICOM and
:mod:`alnm_core.imaging` NIfTI / NRRD and masks.

Example:
    >>> import numpy as np
    >>> v = Volume(np.zeros((2, 3, 9, 8)), spacing=(3.0, 0.7, 0.7), b_values=(50.0, 800.0))
    >>> v.select_b_value().shape3d
    (3, 9, 8)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

#: DICOM attributes that identify a person; they are never read into our objects or logs.
IDENTIFYING_TAGS = (
    "PatientName", "PatientBirthDate", "AccessionNumber", "PatientAddress",
    "OtherPatientNames", "ReferringPhysicianName", "InstitutionName", "PatientTelephoneNumbers",
)


class ImageReadError(ValueError):
    """An image or mask that cannot be read or used; the message names the file."""


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found in a DICOM folder: what a user needs to write a series rule.

    Attributes:
        uid: SeriesInstanceUID.
        number: SeriesNumber, if present.
        description: SeriesDescription.
        n_files: number of files.
        n_images: number of 2D images (frames of multi-frame files counted one by one).
        kind: ``MR``, ``enhanced MR``, ``legacy converted enhanced MR`` (or the modality).
        plane: ``axial``, ``coronal``, ``sagittal`` or ``oblique``.
        b_values: distinct DiffusionBValues (empty if none).
        n_phases: number of temporal positions (0 if not dynamic).
        selected: whether the volume was read from this series.
    """

    uid: str
    number: int | None
    description: str
    n_files: int
    n_images: int
    kind: str
    plane: str
    b_values: tuple[float, ...] = ()
    n_phases: int = 0
    selected: bool = False

    def line(self) -> str:
        """One line for listings, e.g. ``series 3 "AX DWI": 28 images, axial, b=50/800``."""
        parts = [f"{self.n_images} image(s)" + (f" in {self.n_files} file(s)" if self.n_files != self.n_images
                                                 and self.n_files > 1 else ""), self.plane]
        if self.kind != "MR":
            parts.append(self.kind)
        if self.b_values:
            parts.append("b=" + "/".join(f"{b:g}" for b in self.b_values))
        if self.n_phases:
            parts.append(f"{self.n_phases} phases")
        number = f"series {self.number}" if self.number is not None else "series"
        return f'{number} "{self.description}": {", ".join(parts)} [uid {self.uid}]'


@dataclass(frozen=True)
class Volume:
    """An MRI series as arrays plus geometry.

    Attributes:
        array: ``(z, y, x)`` for a single volume, ``(n, z, y, x)`` for n b-values or phases.
        spacing: voxel size ``(z, y, x)`` in mm (z = distance between slice centres).
        origin: position of the first voxel (LPS, mm).
        direction: 3 x 3 direction cosines (columns: x, y, z axes), as SimpleITK.
        b_values: DWI b-values in s/mm^2, one per leading index; None if not DWI.
        phases: DCE temporal position identifiers, one per leading index; None if not dynamic.
        phase_times_s: acquisition time of each phase relative to the first, in seconds.
        meta: non-identifying acquisition attributes (TR, TE, flip angle, field strength...).
        path: where it was read from.
        series: DICOM only: every image series found where it was read from, those read
            marked ``selected``.
        frame_of_reference_uid: DICOM only: FrameOfReferenceUID (to place DICOM SEG masks).
        warnings: things skipped while reading (e.g. non-DICOM files in a series folder).
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)
    b_values: tuple[float, ...] | None = None
    phases: tuple[int, ...] | None = None
    phase_times_s: tuple[float, ...] | None = None
    meta: dict = field(default_factory=dict)
    path: str = ""
    series: tuple[SeriesInfo, ...] = ()
    frame_of_reference_uid: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def shape3d(self) -> tuple[int, int, int]:
        """Spatial shape ``(z, y, x)``."""
        return tuple(self.array.shape[-3:])  # type: ignore[return-value]

    def select(self, index: int) -> "Volume":
        """The 3D volume at ``index`` of a DWI / DCE stack (``self`` if already 3D)."""
        if self.array.ndim == 3:
            return self
        return dataclasses.replace(self, array=self.array[index], b_values=None, phases=None,
                                   phase_times_s=None, meta=dict(self.meta))

    def select_b_value(self, b: float | None = None) -> "Volume":
        """The DWI volume at b-value ``b`` (default: the highest).

        Raises:
            ImageReadError: the series holds no b-values, or not the one asked for.
        """
        if not self.b_values:
            raise ImageReadError(f"{self.path}: series has no DiffusionBValue; cannot select b={b}")
        if b is None:
            b = max(self.b_values)
        matches = [i for i, v in enumerate(self.b_values) if abs(v - b) < 1e-6]
        if not matches:
            raise ImageReadError(
                f"{self.path}: b-value {b:g} not in series (has {[f'{v:g}' for v in self.b_values]})"
            )
        return self.select(matches[0])

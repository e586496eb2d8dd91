"""Per-row outcome codes of a projection (int8), shared by every solver.

``BASE``: α = 1, the base is returned. ``TASK``: the task already meets the ratio bound and is returned.
``PROJECTED``: the constrained optimum was computed and verified. ``INVALID``: non-finite or non-positive
input (or α), replaced by the base. ``UNVERIFIED``: the solution failed verification, replaced by the base.
The last two are the *fallbacks*.
"""

BASE, TASK, PROJECTED, INVALID, UNVERIFIED = 0, 1, 2, 3, 4
NAMES = ("base", "task", "projected", "invalid", "unverified")
FALLBACK_CODES = (INVALID, UNVERIFIED)

#: Relative margins of the successive shrink rounds toward the base that end every solve: the first keeps the
#: constraint within ~1e-14 of log α; later ones only matter when rounding to the output dtype moved the point
#: (float32 output, or a solution within ~1e-13 of the base, where the rounded σb − s is coarse).
MARGINS = (1e-14, 1e-11, 1e-8, 1e-6, 1e-4, 1e-2, 1e-1, 0.5)

"""DICOM series cases (missing slice, non-uniform spacing, duplicate positions, corrupt slice,
mixed orientations, gantry tilt, ...): added by the DICOM series work (issue 12, item 5).

Append :class:`badinput.harness.Case` entries to ``CASES``; test_badinput.py collects every
``cases_*.py`` module's list.
"""
CASES = []

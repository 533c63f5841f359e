"""The base every layer stands on: errors, diagnostics, the i18n catalog, settings, config files,
YAML with positions, durations, the clock, the calendar, the data dictionary, masking,
observability.
"""

"""The ``wavehook`` command line: one group gathering each package's commands."""

"""The commands of ``wavehook``, one module per package they drive; ``wavehook.cli`` lists them."""

"""An example out-of-tree driver for snapdriver (see driver.py)."""

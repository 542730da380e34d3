"""Package marker, as openvstorage/volumedriver installs its Python binding (src/filesystem-python-client @ b244eb00): volumedriver/."""

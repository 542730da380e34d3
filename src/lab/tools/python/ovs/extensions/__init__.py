"""Package marker, as openvstorage/framework ovs/extensions/__init__.py @ 2.9.30 (the lab double of the framework; see ovs/__init__.py)."""

"""Model monitoring: reference statistics recorded with a version, and the PSI of what
serving (or `maas drift`) sees against them."""

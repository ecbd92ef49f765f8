"""Python-level attention kernels (Triton), shared by the platforms that can run them."""

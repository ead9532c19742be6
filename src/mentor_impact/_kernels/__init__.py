"""Private vectorised kernels on plain ndarrays (no pandas, no validation)."""

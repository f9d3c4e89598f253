"""HTTP to the control-plane API: the only part of the CLI that imports an HTTP client."""

"""`lcm`: the operators' command line for Lablet Cloud Manager, a client of the control-plane API's public REST
and event stream (never its internal endpoints).

Layers: `main` (the command tree, error exits) -> `commands` (one module per command group: which calls, which
columns) -> `transport` (HTTP: the API client, the event stream), `render` (tables and JSON, pure) and
`config` (where the API is and which credentials to send)."""

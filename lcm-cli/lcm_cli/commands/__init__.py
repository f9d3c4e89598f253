"""The command groups: each module adds its subcommands to the parser (`register`) with the function that runs
them, which calls the API through `Context.api` and prints through `Context.emit`."""

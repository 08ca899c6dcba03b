"""End-to-end tests: the service and the provider fakes over real loopback sockets."""

"""The web console: server-rendered pages over the services' HTTP APIs, for coders,
billers, collectors, leaders and ops, signed in with the platform's tokens."""

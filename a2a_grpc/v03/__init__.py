"""A2A v0.3 on every binding: the v0.3 wire forms and their translation to and from v1.0."""

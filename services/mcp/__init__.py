"""Makes the service directories a package path so each service's tests get a unique module name."""

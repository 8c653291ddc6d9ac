"""``tlssim probe``: what real MX hosts do with STARTTLS, as a remote world file."""

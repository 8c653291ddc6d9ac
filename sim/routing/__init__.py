"""Route selection: which connector, virtual server and next hop a recipient takes."""

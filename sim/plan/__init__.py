"""The built plan of a scenario: one pure step from the file format to what a run executes.

``build_plan(scenario)`` expands ``address_spaces_from_remotes`` into address spaces,
chooses the route per (source server, recipient domain), and for every queue fixes
its next hop and hosts, the TLS policy in force, the product's timers and the session
outcome with each host over simulated time. The world of a run executes this plan;
``tlssim route`` prints it. Both read the same object, so the route a command explains
is the route the run takes.

One module per question: ``remote`` (the remote world), ``parties`` (who takes part
in a session), ``hosts`` (a queue's hosts under the sender's transport policies),
``outbound`` (our routes and queues), ``inbound`` (the queues senders hold for us),
``explain`` (what ``tlssim route`` prints), ``notes`` (settings the product lacks) and
``build`` (the ``Plan`` that answers them).

Import from the module that answers the question: this package imports nothing, so
that a command which needs one answer (``validate``: the notes) loads only that.
"""

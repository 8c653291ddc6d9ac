"""The plan of a scenario, assembled from its questions: the remote world
(``remote``), the parties to each session (``parties``), our outbound routes and
queues (``outbound``), the queues remote senders hold for us (``inbound``), what
``tlssim route`` prints (``explain``) and the notes on settings (``notes``)."""

from __future__ import annotations

from typing import Any

from sim.pki.authorities import ServerCertificate
from sim.plan.explain import explain as explain_route
from sim.plan.inbound import sender_queue
from sim.plan.notes import notes as scenario_notes
from sim.plan.outbound import Outbound
from sim.plan.parties import Parties
from sim.plan.plans import QueuePlan, RoutePlan
from sim.plan.remote import RemoteWorld, with_generated_address_spaces
from sim.scenario.model import InboundFlow, Scenario


def build_plan(scenario: Scenario) -> Plan:
    """The plan of ``scenario``: a pure function of the scenario (no random draws)."""
    return Plan(scenario)


class Plan:
    """One answer per question a run or a command asks of the scenario. Routes and
    queues are made when first asked for and kept; the answers do not depend on the
    order of the questions."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.remote = RemoteWorld(scenario)
        self.organisation = with_generated_address_spaces(
            scenario.organisation, scenario.remotes.domains, self.remote.population
        )
        self.parties = Parties(scenario, self.organisation)
        self.outbound = Outbound(self.parties, self.remote)
        self.virtual_servers = self.parties.virtual_servers
        self.server_profile = self.parties.server_profile
        # The questions a run asks per message are bound once: no extra call on the way.
        self.route = self.outbound.route
        self.generated = self.outbound.generated
        self.domain = self.remote.domain
        self.mx = self.remote.mx
        self.profile_of = self.parties.profile_of
        self.our_tlsa = self.parties.our_tlsa
        self.tlsa_records = self.parties.tlsa_records

    @property
    def certificates(self) -> dict[str, ServerCertificate]:
        return self.parties.certificates

    def sender_queue(self, flow: InboundFlow, part: int = 0) -> QueuePlan:
        """The queue at a remote sender that holds its mail for us (``inbound``)."""
        return sender_queue(self.parties, flow, part)

    def explain(self, source_server: str, domain: str) -> dict[str, Any]:
        """The route of mail from ``source_server`` to ``domain`` as plain data."""
        planned: RoutePlan = self.route(source_server, domain)
        return explain_route(planned, self.server_profile[source_server], source_server, domain)

    def notes(self) -> list[str]:
        return scenario_notes(self.scenario)

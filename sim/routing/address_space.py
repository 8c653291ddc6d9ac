"""SMTP address spaces: which recipient domains a connector claims, and how specifically.

Two products, two matching rules (reference/mta-semantics.md):

* Exchange 2000/2003 (KB 244986, KB 229961): an address space names a domain and is
  matched as a suffix at a label boundary, so ``contoso.com`` also claims
  ``sales.contoso.com``; matching reads only up to the first wildcard, and the match
  with more literal characters wins; an exact match beats a suffix match of the same
  length; ``*`` matches everything and is the least specific.
* Exchange 2007 and later (``New-SendConnector`` AddressSpaces; send-connectors.md):
  ``contoso.com`` is that domain only, ``*.contoso.com`` is the domain and its
  subdomains, ``*`` is everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.vocabulary import MatchRules


@dataclass(frozen=True, slots=True)
class AddressSpace:
    """One address space of a connector: a pattern and its cost (1-100)."""

    pattern: str
    cost: int = 1

    @property
    def suffix(self) -> str:
        """The literal domain part: ``contoso.com`` for both ``contoso.com`` and ``*.contoso.com``."""
        return "" if self.pattern == "*" else self.pattern.removeprefix("*.")

    def specificity(self, domain: str, rules: MatchRules) -> tuple[int, int] | None:
        """How specifically this space claims ``domain``; ``None`` if it does not match.

        The result orders matches: a larger tuple is more specific. It is (literal
        characters matched, 1 for an exact domain match else 0), so ``*`` is (0, 0).
        """
        if self.pattern == "*":
            return (0, 0)
        suffix = self.suffix
        exact = domain == suffix
        below = domain.endswith("." + suffix)
        if rules is MatchRules.EXCHANGE2007:
            wildcard = self.pattern.startswith("*.")
            matched = exact or (wildcard and below)
        else:
            matched = exact or below
        if not matched:
            return None
        return (len(suffix), 1 if exact and not self.pattern.startswith("*.") else 0)

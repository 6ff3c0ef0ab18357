"""Disclosure control: what may leave the sandbox, and in what form (issue 8 rule 5). 秘匿処理.

Every rule is here, one module each; staff documentation is ``docs/disclosure.md``.

========================  ===============================================================================
module                    rule
========================  ===============================================================================
:mod:`.policy`            which rules apply, per dataset (``<home>/disclosure.toml``); defaults: method
                          perturbation (builder), threshold 10, dominance n=2 k=85%, p% rule p=10, zeros
                          shown, ptable D=5 V=3 js=5, magnitudes moved by at most 10% of their top two
                          contributions. A table over several datasets gets the strictest combination.
:mod:`.record_keys`       each person's secret uint32 record key (AES-256 of the pseudonymous ID under the
                          hub's ``record_key.key``); a cell's key is the sum of its contributors' keys.
:mod:`.ptable`            the published perturbation table, built deterministically from (D, V, js): noise
                          in [-D, D], mean 0, variance V, zeros stay zeros, no positive count below js.
:mod:`.cellkey`           consistent noise: a cell's count noise is the ptable at (min(n, N), cell key);
                          sums, means and medians move by noise scaled by their largest contributions.
:mod:`.suppression`       primary rules (threshold, (n, k) dominance, p%, zeros) and secondary suppression
                          over additive constraints (CUBE margins in any number of dimensions, hierarchies).
:mod:`.grid`              cells as code indices and the additive constraints as CSR arrays (vectorized).
:mod:`.hypercube`         hypercubes of suppressed cells: a fast proof of protection (a sub-interval of the
                          feasible interval) and the cheapest cube that protects a cell (HYPERCUBE method).
:mod:`.audit`             the suppression audit: each primary cell's feasible interval by linear
                          programming must be at least its protection width (threshold; p% of a sum);
                          per independent group of suppressed cells, within a variable budget.
:mod:`.differencing`      nested cells across releases (filters narrowed, total minus part, bands inside
                          bands) whose difference is a group below the threshold: refuse, or review.
:mod:`.protect`           the table builder's ``CellProtector``: the rules above in order, and the
                          machine-readable release record (SATRE 3.3.09).
========================  ===============================================================================

Methods: ``perturbation`` perturbs every count (no count is suppressed; magnitude cells still get the
primary and secondary rules); ``suppression`` suppresses and publishes the rest exactly; ``both``
suppresses, then perturbs what is shown.
"""

"""Number checks and chat reads through the slot (issue 13 items 3 and 5), against the
simulated page on every route: the 2026 page's modules, its DOM with the modules withheld,
and the 2021-23 page. A SlotRuntime in this process, as in tests/test_driver.py (whose
fixtures these are)."""
from __future__ import annotations

from tests.helpers import wait_until
from tests.test_driver import (  # noqa: F401 - fixtures and the parametrization hook
    OWN, PEER, every_route, fresh_sim, link, make_runtime, profile, pytest_generate_tests, sim,
)

UNREGISTERED = "919999999999"  # the simulator's default registry leaves it out


@every_route
def test_a_number_check_answers_the_id_whatsapp_uses(make_runtime, sim, profile):
    rt = make_runtime()
    link(rt, sim)
    answers = rt.checks.check("s1", 1, [PEER, UNREGISTERED, "5215534372942"])
    assert answers[PEER]["exists"] is True and answers[PEER]["wa_id"] == f"{PEER}@c.us"
    assert answers[UNREGISTERED] == {**answers[UNREGISTERED], "exists": False, "wa_id": None}
    # Mexico, dialled with the old "1" after 52: WhatsApp knows the account without it.
    assert answers["5215534372942"]["exists"] is True and answers["5215534372942"]["wa_id"] == "525534372942@c.us"
    assert set(rt.checks.cache.get_many("s1", list(answers))) == set(answers), "each answer is kept"
    counters = sim.get("/sim/control/counters")
    if profile == "2026":  # asked through the existence query: no chat was opened for it
        assert counters["exists_queries"] >= 3 and counters["chat_opens"] == counters["deep_link_opens"] == 0


def unread(sim, peer: str = PEER) -> int:
    return next((c["unread"] for c in sim.get(f"/sim/control/chats?phone={OWN}")["chats"] if c["peer"] == peer), 0)


@every_route
def test_a_chat_with_replies_is_marked_read(make_runtime, sim, profile):
    rt = make_runtime()
    link(rt, sim)
    sim.post("/sim/control/incoming", {"from": PEER, "to": OWN, "text": "are you there?"})
    sim.post("/sim/control/incoming", {"from": PEER, "to": OWN, "text": "hello?"})
    wait_until(lambda: unread(sim) == 2, 10, what="two unread messages")
    driver = rt.sessions["s1"].driver
    wait_until(lambda: driver.find_elements("css selector", "#pane-side .unread-badge"), 10,
               what="the page to show the unread chat")
    route = rt.checks.mark_read("s1", 1, PEER)
    assert unread(sim) == 0
    reads = sim.get("/sim/control/counters")["chat_reads"]
    if profile == "2026":  # the page's own sendSeen, the chat left closed
        assert route == "modules" and [(r["peer"], r["via"], r["unread"]) for r in reads] == [(PEER, "model", 2)]
        assert sim.get("/sim/control/counters")["chat_opens"] == 0
    else:  # opening the chat reads it, as on the real page
        assert route == "dom" and [(r["peer"], r["via"]) for r in reads] == [(PEER, "open")]

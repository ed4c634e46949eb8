"""Wiring of the empathy turn. `build(variant)` wires the nodes a pipeline variant needs
(`agent/variants.py`); `builder` is the full graph uncompiled (tests compile it with their own
checkpointer); `graph` is compiled without one, for LangGraph's dev server and Studio."""

from __future__ import annotations

from collections.abc import Hashable

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent import nodes
from agent.context import Context
from agent.state import TurnInput, TurnState
from agent.variants import FULL, Variant


def build(variant: Variant = FULL) -> StateGraph[TurnState, Context, TurnInput, TurnState]:
    """Return the uncompiled graph of one turn for a pipeline variant (default: the full one)."""
    g = StateGraph(TurnState, context_schema=Context, input_schema=TurnInput)
    for node in (
        nodes.guard,
        nodes.safety_screen,
        nodes.recall,
        nodes.crisis_reply,
        nodes.remember,
    ):
        g.add_node(node.__name__, node)
    g.add_edge(START, "guard")
    g.add_conditional_edges("guard", nodes.route_after_guard, ["safety_screen", END])
    g.add_conditional_edges("safety_screen", nodes.route_after_safety, ["recall", "crisis_reply"])
    g.add_edge("crisis_reply", "remember")
    g.add_edge("remember", END)
    if variant.single_call:
        g.add_node("plain_reply", nodes.plain_reply)
        g.add_edge("recall", "plain_reply")
        g.add_edge("plain_reply", "remember")
        return g
    _reasoned_reply(g, variant)
    return g


def _reasoned_reply(
    g: StateGraph[TurnState, Context, TurnInput, TurnState], variant: Variant
) -> None:
    """Wire emotion -> cause (or its stand-in) -> strategy (if any) -> reply."""
    cause = nodes.analyze_cause if variant.cause_analysis else nodes.assume_cause
    after_cause = "select_strategy" if variant.strategy_policy else "generate_reply"
    for node in (nodes.recognize_emotion, cause, nodes.generate_reply):
        g.add_node(node.__name__, node)
    g.add_edge("recall", "recognize_emotion")
    g.add_edge("recognize_emotion", cause.__name__)
    if variant.cause_analysis:  # the LLM's risk flag may still send the turn to crisis_reply
        routes: dict[Hashable, str] = {
            "select_strategy": after_cause,
            "crisis_reply": "crisis_reply",
        }
        g.add_conditional_edges(cause.__name__, nodes.route_after_analysis, routes)
    else:
        g.add_edge(cause.__name__, after_cause)
    if variant.strategy_policy:
        g.add_node("select_strategy", nodes.select_strategy)
        g.add_edge("select_strategy", "generate_reply")
    g.add_edge("generate_reply", "remember")


builder = build()
graph: CompiledStateGraph[TurnState, Context, TurnInput, TurnState] = builder.compile()

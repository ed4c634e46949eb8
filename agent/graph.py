"""Wiring of the empathy turn. `builder` is uncompiled (tests compile it with their own
checkpointer); `graph` is compiled without one, for LangGraph's dev server and Studio."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent import nodes
from agent.context import Context
from agent.state import TurnInput, TurnState


def build() -> StateGraph[TurnState, Context, TurnInput, TurnState]:
    """Return the uncompiled graph of one turn."""
    g = StateGraph(TurnState, context_schema=Context, input_schema=TurnInput)
    for node in (
        nodes.guard,
        nodes.safety_screen,
        nodes.recall,
        nodes.recognize_emotion,
        nodes.analyze_cause,
        nodes.select_strategy,
        nodes.generate_reply,
        nodes.crisis_reply,
        nodes.remember,
    ):
        g.add_node(node.__name__, node)
    g.add_edge(START, "guard")
    g.add_conditional_edges("guard", nodes.route_after_guard, ["safety_screen", END])
    g.add_conditional_edges("safety_screen", nodes.route_after_safety, ["recall", "crisis_reply"])
    g.add_edge("recall", "recognize_emotion")
    g.add_edge("recognize_emotion", "analyze_cause")
    g.add_conditional_edges(
        "analyze_cause", nodes.route_after_analysis, ["select_strategy", "crisis_reply"]
    )
    g.add_edge("select_strategy", "generate_reply")
    g.add_edge("generate_reply", "remember")
    g.add_edge("crisis_reply", "remember")
    g.add_edge("remember", END)
    return g


builder = build()
graph: CompiledStateGraph[TurnState, Context, TurnInput, TurnState] = builder.compile()

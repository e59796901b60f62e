"""The agent: the tool-calling loop, its tools and limits. Talks to the outside through ports."""

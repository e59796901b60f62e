"""The design contract as test data, shared by the tests of alerts, dashboards and code."""

"""The KPI service: revenue-cycle KPIs (HFMA MAP Keys) kept from the event stream."""

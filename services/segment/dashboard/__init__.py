"""The analysts' dashboard: one static page, its data in one JSON, Plotly served locally."""

"""HTTP routes: parse and check the request, call one flow, render a page."""

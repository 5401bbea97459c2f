"""The live dashboard: one static page the query API serves at `/dashboard`.

The page is plain HTML, CSS and JavaScript shipped inside the package (no build step, nothing
fetched from elsewhere). It is served without authentication; everything it shows comes from the
query API's own endpoints, called with the API key the user types in, as a bearer token.
"""

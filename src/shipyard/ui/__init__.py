"""The web UI: server-rendered pages over the same services and authorization as the API.

Each domain's pages live in ``ui/pages/<domain>.py`` with templates under
``ui/templates/<domain>/``; :data:`shipyard.ui.routes.PAGE_MODULES` lists them.
Actions (moving an alias, say) are calls to the JSON API from the page's script,
so they pass through the same authorization check and audit as any client.
"""

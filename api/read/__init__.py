"""The api's read layer: every query the JSON routers and the staff page make, one module per
resource, scoped to the caller through ``api.read.scope.scoped``.

A route (``api/routers/``, ``api/page/``) parses the request, calls a function here and
shapes the answer; it holds no SQL and never calls another route's endpoint function. The few
writes both sides make (an action on an alert) sit beside the reads of their resource.
"""

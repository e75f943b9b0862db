-- wrk: POST the GraphQL document in the environment variable BODY (a JSON request body).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BODY")

-- wrk script: POST a 1 KiB JSON body to the URL's path.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"data":"' .. string.rep("x", 1012) .. '"}'

-- wrk script: POST a 1 KiB JSON body to /hooks/g0 .. /hooks/g{CQ_GROUPS-1}, round robin, so a backlog spreads over groups.
local groups = tonumber(os.getenv("CQ_GROUPS") or "1000")
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"data":"' .. string.rep("x", 1012) .. '"}'
request = function()
  counter = counter + 1
  return wrk.format(nil, "/hooks/g" .. (counter % groups))
end

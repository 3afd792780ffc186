SELECT auction, count(*) AS num FROM bid
GROUP BY hop(interval '2 seconds', interval '10 seconds'), auction;

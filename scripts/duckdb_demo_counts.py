"""Independent reference for the demo segments: the same 20 audiences written by hand in
DuckDB SQL over the demo Parquet files. Prints each segment's size, to compare with
`segql count DIR/segments.seg`.

    pip install duckdb
    python3 scripts/duckdb_demo_counts.py examples/shop
"""
import duckdb, sys
d = sys.argv[1]
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
for t in ["customers","purchased","viewed","added_to_cart","email_opened","ticket_opened"]:
    con.execute(f"create view {t} as select * from read_parquet('{d}/{t}.parquet')")
NOW = "timestamp '1998-07-01 00:00:00'"
def win(n): return f"ts >= {NOW} - interval {n} day and ts <= {NOW}"
def ex(table, cond="true"): return f"exists (select 1 from {table} e where e.customer_id = c.customer_id and e.ts <= {NOW} and {cond})"
def agg(expr, table, cond="true", default="null"):
    return f"coalesce((select {expr} from {table} e where e.customer_id = c.customer_id and e.ts <= {NOW} and {cond}), {default})"
hav = "6371.0*2*asin(sqrt(pow(sin(radians(lat-48.137)/2),2)+cos(radians(lat))*cos(radians(48.137))*pow(sin(radians(lon-11.575)/2),2)))"
S = {}
S["young_women"] = "gender = 'f' and age between 18 and 29"
S["high_income"] = "income > 80000"
S["dach"] = "country in ('DE','AT','CH')"
S["near_munich"] = f"{hav} < 50"
S["sporty"] = "list_has_any(interests, ['sports','outdoor'])"
S["munich_outdoor"] = f"list_contains(interests, 'outdoor') and ({S['near_munich']})"
S["frequent_buyers"] = agg("count(*)", "purchased", win(90), "0") + " >= 5"
S["big_spenders"] = agg("sum(amount)", "purchased", win(365), "0") + " > 1500"
S["recent_visitors"] = ex("viewed", win(7))
S["never_purchased"] = f"{ex('viewed')} and not {ex('purchased')}"
S["lapsed"] = f"{ex('purchased')} and not {ex('purchased', win(180))}"
S["cart_abandoners"] = f"{ex('added_to_cart', win(14))} and not {ex('purchased', win(14))}"
S["xmas_gift_buyers_1997"] = ex("purchased", "category in ('toys','electronics') and ts >= timestamp '1997-11-15' and ts < timestamp '1997-12-25'")
S["big_fashion_buyers"] = f"{ex('purchased', 'category = ' + chr(39) + 'fashion' + chr(39) + ' and ' + win(30))} and {agg('avg(amount)', 'purchased', win(30))} > 100"
S["vip_at_risk"] = "churn_score > 0.7 and ltv > 500"
S["email_engaged"] = agg("count(*)", "email_opened", win(60), "0") + " >= 3"
S["email_dormant"] = f"email_opt_in and not {ex('email_opened', win(180))}"
S["unhappy_customers"] = ex("ticket_opened", "reason in ('defect','refund') and " + win(90))
S["win_back"] = f"({S['lapsed']}) and email_opt_in and not ({S['vip_at_risk']})"
lifecycle = f"""case when {agg('min(ts)', 'purchased')} > {NOW} - interval 30 day then 'new'
  when {ex('purchased', win(90))} then 'active'
  when {ex('purchased', win(180))} then 'cooling'
  when {ex('purchased')} then 'lapsed' else 'prospect' end"""
S["new_customers"] = f"({lifecycle}) = 'new'"
cols = ",\n".join(f"coalesce(({v}), false) as {k}" for k, v in S.items())
con.execute(f"create table m as select c.customer_id, {lifecycle} as lifecycle, {cols} from customers c")
total = con.execute("select count(*) from m").fetchall()[0][0]
print(f"customers: {total}")
for k in S:
    n = con.execute(f"select count(*) from m where {k}").fetchall()[0][0]
    print(f"{k:24} {n:6}")
print(con.execute("select lifecycle, count(*) n from m group by 1 order by n desc").fetchall())
# float ties near thresholds
print("ties:",
  con.execute(f"select count(*) from customers c where abs({agg('sum(amount)', 'purchased', win(365), '0')} - 1500) < 0.006").fetchall()[0],
  con.execute(f"select count(*) from customers c where abs({agg('avg(amount)', 'purchased', win(30))} - 100) < 1e-6").fetchall()[0],
  con.execute("select count(*) from customers where churn_score = 0.7 or ltv = 500 or income = 80000").fetchall()[0])

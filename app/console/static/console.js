// Live regions (server-sent events) and ECharts charts; no framework, works offline.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach((region) => {
    const q = new URLSearchParams(JSON.parse(region.dataset.query || "{}"));
    q.set("topic", region.dataset.live);
    const source = new EventSource("/events?" + q.toString());
    source.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      region.innerHTML = data.html;
      const stamp = document.getElementById("live-ts");
      if (stamp) stamp.textContent = new Date(data.ts * 1000).toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }) + " 北京时间";
      region.dataset.updated = String(data.ts);
    };
  });
  const fmt = (ts) => new Date(ts).toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
  const chart = document.getElementById("chart");
  if (chart && window.echarts) {
    // Risk degree (left axis) and the price of the account's main contracts (right axis).
    const d = JSON.parse(chart.dataset.chart);
    const c = echarts.init(chart);
    const prices = Object.entries(d.prices || {}).map(([name, data]) => ({
      name, type: "line", yAxisIndex: 1, showSymbol: data.length < 30, data,
    }));
    c.setOption({
      animation: false, tooltip: { trigger: "axis" }, legend: { top: 0 },
      grid: { left: 50, right: 60, top: 40, bottom: 40 },
      xAxis: { type: "time", name: "北京时间", axisLabel: { formatter: (v) => fmt(v) } },
      yAxis: [
        { type: "value", name: "风险度", axisLabel: { formatter: (v) => (v * 100).toFixed(0) + "%" } },
        { type: "value", name: "价格", scale: true, splitLine: { show: false } },
      ],
      series: [
        { name: "风险度", type: "line", step: "end", data: d.risk_degree,
          markLine: { symbol: "none", data: [{ yAxis: 1 }, { yAxis: 0.8 }] } },
        ...prices,
      ],
    });
    chart.dataset.series = String(1 + prices.length);
  }
  const kpi = document.getElementById("kpi-chart");
  if (kpi && window.echarts) {
    const d = JSON.parse(kpi.dataset.chart);
    echarts.init(kpi).setOption({
      tooltip: {}, xAxis: { type: "category", data: d.days }, grid: { left: 50, right: 20, top: 20, bottom: 30 },
      yAxis: { type: "value", max: 1, axisLabel: { formatter: (v) => (v * 100).toFixed(0) + "%" } },
      series: [{ name: "闭环率", type: "bar", data: d.rate }],
    });
  }
});

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
    const d = JSON.parse(chart.dataset.chart);
    const c = echarts.init(chart);
    c.setOption({
      tooltip: { trigger: "axis" }, grid: { left: 50, right: 20, top: 30, bottom: 40 },
      xAxis: { type: "category", data: d.ts.map(fmt), name: "北京时间" },
      yAxis: { type: "value", axisLabel: { formatter: (v) => (v * 100).toFixed(0) + "%" } },
      series: [{ name: "风险度", type: "line", data: d.risk_degree, markLine: { data: [{ yAxis: 1 }, { yAxis: 0.8 }] } }],
    });
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

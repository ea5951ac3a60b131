// The Fractal Node sidebar panel: the home's dashboard from /api/fractal_node/<entry>/dashboard
// (numbers computed by the integration from Home Assistant's recorder), drawn with plotly.js
// served by the integration from the plotly wheel. Light DOM, so plotly's styles apply.
const PLOTLY_URL = "/fractal_node_static/plotly.min.js";
const COLOURS = { pv: "#f2b705", battery: "#2a9d8f", grid: "#6c757d", export: "#90be6d", demand: "#e63946" };
const LAYOUT = { margin: { l: 50, r: 20, t: 40, b: 40 }, height: 320, legend: { orientation: "h" } };

function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.__fractalPlotly) {
    window.__fractalPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = PLOTLY_URL;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("plotly.js did not load"));
      document.head.appendChild(script);
    });
  }
  return window.__fractalPlotly;
}

const kwh = (wh) => (wh / 1000).toFixed(2);
const watts = (w) => (w === undefined || w === null ? "–" : `${Math.round(w).toLocaleString("en")} W`);

class FractalNodeDashboard extends HTMLElement {
  set hass(hass) {
    const first = !this._hass;
    this._hass = hass;
    if (first) this.refresh();
  }

  set panel(panel) {
    this._panel = panel;
  }

  connectedCallback() {
    this.style.display = "block";
    this.style.padding = "16px";
    this.style.background = "var(--primary-background-color, #fff)";
  }

  async refresh(period) {
    this._period = period || this._period || "day";
    const entry = this._panel.config.entry_id;
    try {
      const [data, Plotly] = await Promise.all([
        this._hass.callApi("GET", `fractal_node/${entry}/dashboard?period=${this._period}`),
        loadPlotly(),
      ]);
      this.render(data, Plotly);
    } catch (error) {
      this.textContent = `The dashboard could not load: ${error.message || error}`;
    }
  }

  render(data, Plotly) {
    const now = data.now || {};
    this.innerHTML = `
      <h1>${this._panel.title || "Fractal Node"}</h1>
      <label>Period <select id="period">
        <option value="day">Last 24 hours</option><option value="week">Last 7 days</option>
      </select></label>
      <div style="display:flex;flex-wrap:wrap;gap:16px">
        <div id="chart-power" style="width:560px"></div>
        <table id="numbers-now"><caption>Energy flow ${now.ts ? "at " + now.ts : ": no data"}</caption>
          <tr><th>Grid import</th><td data-metric="now.import_w">${watts(now.import_w)}</td></tr>
          <tr><th>Grid export</th><td data-metric="now.export_w">${watts(now.export_w)}</td></tr>
          <tr><th>PV</th><td data-metric="now.generation_w">${watts(now.generation_w)}</td></tr>
          <tr><th>Battery charging</th><td data-metric="now.charge_w">${watts(now.charge_w)}</td></tr>
          <tr><th>Battery discharging</th><td data-metric="now.discharge_w">${watts(now.discharge_w)}</td></tr>
          <tr><th>Demand</th><td data-metric="now.demand_w">${watts(now.demand_w)}</td></tr>
        </table>
        <div id="chart-demand-met" style="width:400px"></div>
        <table id="numbers-demand"><caption>How demand was met (kWh)</caption>
          <tr><th>PV</th><td data-metric="demand.pv_kwh">${kwh(data.demand_met_wh.pv)}</td></tr>
          <tr><th>Battery</th><td data-metric="demand.battery_kwh">${kwh(data.demand_met_wh.battery)}</td></tr>
          <tr><th>Grid</th><td data-metric="demand.grid_kwh">${kwh(data.demand_met_wh.grid)}</td></tr>
        </table>
        <div id="chart-pv-use" style="width:400px"></div>
        <table id="numbers-pv"><caption>How PV was used (kWh)</caption>
          <tr><th>Self-consumed</th><td data-metric="pv.self_consumed_kwh">${kwh(data.pv_use_wh.self_consumed)}</td></tr>
          <tr><th>Into the battery</th><td data-metric="pv.battery_kwh">${kwh(data.pv_use_wh.battery)}</td></tr>
          <tr><th>Exported</th><td data-metric="pv.exported_kwh">${kwh(data.pv_use_wh.exported)}</td></tr>
        </table>
      </div>`;
    const select = this.querySelector("#period");
    select.value = this._period;
    select.addEventListener("change", () => this.refresh(select.value));
    const s = data.series;
    const kw = (values) => values.map((v) => (v === null ? null : v / 1000));
    Plotly.newPlot(this.querySelector("#chart-power"), [
      { x: s.ts, y: kw(s.demand_w), name: "Demand", line: { color: COLOURS.demand } },
      { x: s.ts, y: kw(s.generation_w), name: "PV", line: { color: COLOURS.pv } },
      { x: s.ts, y: kw(s.battery_w), name: "Battery (+ charging)", line: { color: COLOURS.battery } },
      { x: s.ts, y: kw(s.grid_w), name: "Grid (+ import)", line: { color: COLOURS.grid } },
    ], { ...LAYOUT, title: { text: "Power (kW)" } }, { displaylogo: false, responsive: true });
    const donut = (target, title, labels, values, colours) =>
      Plotly.newPlot(this.querySelector(target), [
        { type: "pie", hole: 0.5, sort: false, labels, values: values.map((v) => v / 1000), marker: { colors: colours } },
      ], { ...LAYOUT, title: { text: title } }, { displaylogo: false, responsive: true });
    donut("#chart-demand-met", "How demand was met (kWh)", ["PV", "Battery", "Grid"],
      [data.demand_met_wh.pv, data.demand_met_wh.battery, data.demand_met_wh.grid],
      [COLOURS.pv, COLOURS.battery, COLOURS.grid]);
    donut("#chart-pv-use", "How PV was used (kWh)", ["Self-consumed", "Into the battery", "Exported"],
      [data.pv_use_wh.self_consumed, data.pv_use_wh.battery, data.pv_use_wh.exported],
      [COLOURS.demand, COLOURS.battery, COLOURS.export]);
  }
}

customElements.define("fractal-node-dashboard", FractalNodeDashboard);

// What the server put into the page: the refresh period (the scrape interval, seconds) and the
// gauge each threshold key rates (cpu -> host_cpu_usage_percent, …).

const block = document.getElementById("fleetpulse-settings");
export const SETTINGS = block ? JSON.parse(block.textContent) : { refresh: 15, metrics: {} };

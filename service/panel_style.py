"""The panel's stylesheet (inline: the EPR's embedded browser may have no internet).

Colours keep a contrast of at least 4.5:1 on their background and never carry meaning alone:
every status and direction is also said in words. Everything wraps, so the page reads at
400 px without horizontal scrolling.
"""

from __future__ import annotations

from typing import Final

CSS: Final = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1b1f23;
background:#fff;overflow-wrap:anywhere}
header,main,footer{max-width:60rem;margin:0 auto;padding:10px 12px}
header{border-bottom:2px solid #24292f}
h1{font-size:19px;margin:0 0 4px}h2{font-size:17px;margin:18px 0 6px}
h3{font-size:16px;margin:14px 0 4px}h4{font-size:15px;margin:0 0 2px}
.patient{margin:2px 0;font-weight:600}.meta{margin:2px 0;color:#444d56}
.disclaimer{background:#fff4ce;border:1px solid #9a6700;padding:6px 10px;margin:8px 0}
.summary dl{margin:4px 0}.numbers{margin:4px 0;padding-left:18px}
dt{font-weight:600}dd{margin:0 0 6px}
.options{list-style:none;padding:0;margin:0}
.option{border:1px solid #8c959f;border-left-width:6px;padding:8px 10px;margin:8px 0;
border-radius:4px}
.option[data-status=recommended]{border-left-color:#116329}
.option[data-status=caution]{border-left-color:#9a6700}
.option[data-status=contraindicated]{border-left-color:#a40e26;border-left-style:double}
.status{margin:2px 0}.status-recommended{color:#116329}.status-caution{color:#7a4d00}
.status-contraindicated{color:#a40e26}.status-beyond-step,.status-not-lowering,
.status-alternative{color:#444d56}
.intro{margin:0 0 4px;color:#444d56}
.findings{margin:4px 0;padding-left:18px}.finding{margin:2px 0}
.sev-block strong{color:#a40e26}.sev-warn strong{color:#7a4d00}
cite{font-style:normal;color:#444d56;white-space:normal}
cite::before{content:'('}cite::after{content:')'}
summary{cursor:pointer;color:#0550ae;padding:4px 0}
summary:focus-visible,a:focus-visible{outline:3px solid #0550ae;outline-offset:2px}
.chart{margin:6px 0}figcaption{font-weight:600;margin-bottom:4px}
.drivers{list-style:none;padding:0;margin:0}.driver{margin:6px 0}
.driver-words{display:block}.driver-value{display:block;font-size:14px;color:#444d56}
.track{display:block;position:relative;height:12px;margin-top:2px;
background:linear-gradient(#57606a,#57606a) center/2px 100% no-repeat}
.bar{position:absolute;top:1px;height:10px}
.bar-lower{background:#0550ae}
.bar-higher{background:repeating-linear-gradient(45deg,#9a6700 0 3px,#fff 3px 6px);
border:1px solid #9a6700}
.axis{position:relative;height:24px;border-top:1px solid #57606a;margin-top:6px;font-size:12px;
color:#444d56}
.tick{position:absolute;top:5px;transform:translateX(-50%);white-space:nowrap}
.tick-0{transform:none}.tick-4{transform:translateX(-100%)}
.axis-title{margin:0;font-size:12px;color:#444d56}
table{border-collapse:collapse;width:100%;table-layout:fixed;font-size:14px}
.provenance td,.provenance th{overflow-wrap:break-word}
.provenance thead th:nth-child(1),.provenance thead th:nth-child(4){width:30%}
.provenance thead th:nth-child(2),.provenance thead th:nth-child(3){width:20%}
caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border-bottom:1px solid #d0d7de;padding:4px;text-align:left;vertical-align:top}
thead th{background:#f6f8fa}
.stops{list-style:none;padding:0;margin:0}
.stop{border:1px solid #a40e26;border-left-width:6px;padding:8px 10px;margin:8px 0}
footer{border-top:1px solid #d0d7de;color:#444d56;font-size:14px}
"""

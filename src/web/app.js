// The pages' one small script; every page works without it.
// Overview: follows a running sync through progress.json and moves the bar.
// Settings: shows `Days before` only for "Days before their start date".
(function () {
  'use strict';
  var status = document.getElementById('status');
  if (status && status.dataset.progressUrl) {
    var url = status.dataset.progressUrl;
    var started = Date.now();
    var show = function (bar) {
      var element = document.getElementById('sync-progress');
      if (!element) return false;
      element.value = bar.percent;
      element.textContent = bar.percent + '%';
      element.setAttribute('aria-valuenow', String(bar.percent));
      element.setAttribute('aria-valuetext', bar.percent + '%: ' + bar.text);
      var text = status.querySelector('[data-progress-text]');
      if (text) text.textContent = bar.text;
      var percent = status.querySelector('[data-progress-percent]');
      if (percent) percent.textContent = bar.percent + '%';
      return true;
    };
    var hint = status.querySelector('[data-progress-hint]');
    if (hint) hint.textContent = 'The bar moves by itself while the sync runs.';
    var poll = function () {
      fetch(url, { credentials: 'same-origin', cache: 'no-store' })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (answer) {
          if (!answer) { setTimeout(poll, 2000); return; }
          var bar = answer.bar;
          if (bar.syncing) {
            // A sync started after the page was shown: load the page with its bar.
            if (!show(bar)) { window.location.reload(); return; }
            setTimeout(poll, 400);
          } else if (show(bar)) {
            // Finished: the bar stays full a moment, then the page shows the counts.
            setTimeout(function () { window.location.replace(window.location.pathname); }, 1500);
          } else if (Date.now() - started < 15000) {
            setTimeout(poll, 400);
          } else {
            window.location.replace(window.location.pathname);
          }
        })
        .catch(function () { setTimeout(poll, 2000); });
    };
    poll();
  }
  var invite = document.getElementById('invite');
  var days = document.getElementById('days-field');
  if (invite && days) {
    var hintText = document.getElementById('days-hint');
    if (hintText) hintText.textContent = '0–365 calendar days before the start date.';
    var toggle = function () { days.hidden = invite.value !== days.dataset.shownFor; };
    invite.addEventListener('change', toggle);
    toggle();
  }
})();

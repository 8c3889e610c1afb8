// Optional: fill the screener's location from the phone, only when the responder asks.
// The page works without this file; the typed place is used then.
(function () {
  var button = document.getElementById("use-location");
  if (!button || !("geolocation" in navigator)) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    button.disabled = true;
    navigator.geolocation.getCurrentPosition(function (pos) {
      document.getElementById("lat").value = pos.coords.latitude.toFixed(6);
      document.getElementById("lon").value = pos.coords.longitude.toFixed(6);
      var place = document.getElementById("location");
      if (place) place.value = pos.coords.latitude.toFixed(5) + ", " + pos.coords.longitude.toFixed(5);
      button.disabled = false;
    }, function () {
      button.disabled = false;
    }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
  });
})();

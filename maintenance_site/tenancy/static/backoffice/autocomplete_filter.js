// The admin's autocomplete filters (maintenance_site.admin_lists.AutocompleteFilter): choosing a value in the search
// box opens the list filtered by it; clearing the box opens it unfiltered.
"use strict";
window.addEventListener("load", function () {
    django.jQuery("select[data-filter-url]").on("change", function () {
        const url = this.value ? this.dataset.filterUrl.replace("__value__", encodeURIComponent(this.value)) : this.dataset.clearUrl;
        window.location.href = url;
    });
});
